"""The Alembic environment of the server manager: branch `shell` (versions/shell) and branch
`blade` (versions/blade). Shipped as a package so that an installed server can migrate."""
