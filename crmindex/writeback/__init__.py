"""Write-back: local changes queued in Postgres (``enqueue``) and sent to the CRMs by the drainer (``drainer``)."""
