
Ba_scaleJ=