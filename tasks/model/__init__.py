"""The model: settings, names, layout and pure decisions; no cloud, no network."""
