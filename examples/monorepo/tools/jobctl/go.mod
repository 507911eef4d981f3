module example.com/shop/jobctl

go 1.22
