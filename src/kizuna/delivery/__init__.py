"""The send pipeline: consent, suppression, frequency caps, quiet hours, rate limits, retries."""
