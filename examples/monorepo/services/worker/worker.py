"""Polls the job queue and runs each job with jobctl."""
import subprocess
import time

while True:
    subprocess.run(["jobctl", "run-next"], check=False)
    time.sleep(5)
