"""Apple's device-management schema, compiled into the package, and a validator for it.

`data/mdm.json` is generated from Apple's YAML (github.com/apple/device-management) by
`python -m orchardist.schema.generate PATH`; a test keeps it in step with the copy in
`tests/vectors/apple-device-management`. Nothing here imports the web framework or storage.
"""
