"""Grid response: the revision of the hour in progress when a grid event arrives, and the sensor that
triggers it."""
