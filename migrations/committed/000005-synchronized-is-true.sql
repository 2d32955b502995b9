--! Previous: sha1:0e760c225b5f689fe7da6fcad3fb349083142660
--! Hash: sha1:9e204de90bbad0a3b6ce3a0d2beadab3564a5d26
--! Message: synchronized is true

-- What it takes for SYNCHRONIZED to be a checked fact (issue 9): the slots
-- a node prepares for a later init, how each init subscribes, and what it
-- changed on a server that it must put back. Tables and drops only; the
-- functions live in migrations/functions.

-- == topology: prepared slots, origin ==

-- == server settings an init changed ==

-- == schema truth ==

-- == nodes: detach, registration ==
