"""The network and its fit: networks, the one fitting loop, stopping rules, patch consistency, degradations, device."""
