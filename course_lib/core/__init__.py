"""The bottom layer: errors, atomic writes, image conversions, plots, paths/devices. Imports nothing of course_lib."""
