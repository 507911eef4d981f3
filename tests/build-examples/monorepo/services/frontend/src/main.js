welcome to the shop
