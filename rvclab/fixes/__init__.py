"""The documented porting fixes: the registry (keyword data), the toggles and their measurements."""
