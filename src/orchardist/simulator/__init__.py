"""The virtual device: enrolls through the enrollment profile and SCEP, signs every MDM
request and answers commands with realistic data. A client of the public HTTP surface
only — it imports nothing of the server but the wire-format helpers."""
