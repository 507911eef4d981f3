jobctl run-next
