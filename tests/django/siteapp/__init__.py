"""A small site for the guard's tests: plain models with FileField and ImageField."""
