"""The development kit, not shipped: what the tests, the bench and the failure suite share.

A real broker, the service and the simulator as processes, and the results watcher. Shipped code never
imports it.
"""
