"""The turnstile side: GPIO and serial controller backends, a simulator, passage and alarms."""
