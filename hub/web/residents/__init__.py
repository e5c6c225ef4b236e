"""/m/: the pages residents use on their phones (掌上办, 码上办). See hub.web.residents.pages."""
