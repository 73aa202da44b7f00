BScaleJ7·K¿"m
ÀM"Q?»v@$¶ò¿†¬V>