
B	cos_cacheJP¡w?oŠ ¾ùZF?`Ç,=ÿ »>–o|¿~Œ@¿¹R¾ô¾¥;Ü½€sG?Â?v?ìHi¿u©Q¿*1?"mê<ÿDð=ˆ¹j?¹ßY?	œ?