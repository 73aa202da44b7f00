BzyJ
