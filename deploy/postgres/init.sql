-- Synapse needs C collation (see Synapse's docs/postgres.md).
CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER buergerchat;
