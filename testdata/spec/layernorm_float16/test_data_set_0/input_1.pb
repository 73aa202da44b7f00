
BScaleJh¶e²e¹8ÿš‹·V³k¹