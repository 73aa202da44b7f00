
B	initial_hJ å1ŒµL2ðº¶·Y¶gº¾¤Ð8«A4v9R3X³ô»$0