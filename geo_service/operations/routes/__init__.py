"""The operations room's HTTP routes: feedback, inspections, stops."""
