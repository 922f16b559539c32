"""Background jobs shared by every process on one database: named leases
(`jobs.leases`) and the clean-up of dead rows (`jobs.cleanup`)."""
