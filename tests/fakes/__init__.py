"""Local fakes of the services meetnow talks to (the far end only: the real client code runs)."""
