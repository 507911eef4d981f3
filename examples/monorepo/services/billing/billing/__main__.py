"""Serves the billing API."""
import uvicorn

uvicorn.run("billing.app:app", host="0.0.0.0", port=8001)
