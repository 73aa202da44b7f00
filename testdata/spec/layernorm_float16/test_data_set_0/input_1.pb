
BScaleJ;©Ú0b¼v4Â4ó¸–¸z/