BX0_newJпоl>
F?d╠Т>