"""`bos-import`: move a site's data from a running reference BOS into this one (issue 16).

`reference` reads the reference's Redis layout (api.md §6.4) and never writes to it;
`records` turns each reference entry into our record or a reason to reject it;
`importer` plans and applies the writes through our store (validation, indexes,
compare-and-set); `main` is the command line.
"""
