"""Domain model of Panorama: aggregates, their events and the command application."""
