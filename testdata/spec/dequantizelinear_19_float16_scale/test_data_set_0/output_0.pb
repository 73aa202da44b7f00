
ByJFMgO ÏEÿÈ¥Íì½ªÊO^M‰PÐD