"""The supervisor dashboard and the gate staff screen: static assets and templates."""
