"""The shapes of identifiers and values the API and the console accept from outside, in one place."""

MAX_ID = 2**31 - 1  # the store's integer ids and ledger seqs (a PostgreSQL integer)
NO_NUL = r"^[^\x00]*$"  # what reaches the database as text: PostgreSQL refuses NUL characters
HEX32 = r"^[0-9a-f]{32}$"  # request and client ids
HOUSEHOLD = r"^hh_[0-9a-f]{32}$"  # a household's pseudonym
PERSON = r"^p_[0-9a-f]{32}$"  # a person's pseudonym
PLATFORM = r"^(?:FED|HUB)-[A-Z0-9][A-Z0-9-]{0,59}$"  # a federated platform's code, its DCI sender id
DEPARTMENT = r"^[A-Z0-9][A-Z0-9-]{1,63}$"  # a department's code, e.g. MZ-210302 (fullmatch: "$" admits a final newline)
