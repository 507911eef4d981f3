// Command jobctl runs queued jobs.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "run-next" {
		fmt.Println("no job queued")
		return
	}
	fmt.Println("usage: jobctl run-next")
}
