
Bb_scaleJá<