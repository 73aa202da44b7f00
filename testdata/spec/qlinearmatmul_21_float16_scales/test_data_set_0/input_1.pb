
BsaJf*