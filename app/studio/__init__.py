"""Config studio: the city config's structured editor, generated from the city schema (no Flask here).

`city_form.to_form` maps schema + document → form model (values in display units: yuan, %, days);
`city_form.from_form` maps typed input → document (exact fen and basis points), every error in Chinese at its
field; `raw` places the problems of the expert JSON tab at their lines."""
