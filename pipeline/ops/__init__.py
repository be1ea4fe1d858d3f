"""What operators touch: /metrics, /healthz, /readyz, topic creation, synthetic load, replay."""
