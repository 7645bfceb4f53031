"""Bike-sharing feeds (GBFS 2.x and 3.0) → BikeHireDockingStation entities."""
