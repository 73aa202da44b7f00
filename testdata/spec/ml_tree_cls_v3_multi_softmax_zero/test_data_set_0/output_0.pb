
2x2x2x2x2z2y2z2x2x2zBY