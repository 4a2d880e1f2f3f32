"""The bsuite wing: the two-method agent adapter (adapter), sweep bookkeeping (sweep), bsuite-format
CSVs (csv_format), the pandas-3 shim for bsuite's analysis (compat) and the report (report).

Nothing here is imported by the core; import the submodule you need."""
