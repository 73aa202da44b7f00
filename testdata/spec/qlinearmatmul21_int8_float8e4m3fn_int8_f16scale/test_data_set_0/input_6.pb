
By_scaleJ@