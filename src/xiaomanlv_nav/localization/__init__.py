"""Prior-map localisation: each deskewed lidar sweep registered against the map's PCD tiles."""
