#!/bin/sh
echo "no job queued ($1)"
