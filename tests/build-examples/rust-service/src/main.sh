#!/bin/sh
echo "$GREETING, world (as $(id -u))"
