"""Import of CSV and Excel files into business records (accounts, contacts, leads and any
object registered through ``crm_register_import_objects``), as the importing user."""
