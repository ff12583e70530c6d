CREATE TABLE `kv` (
	`key` text PRIMARY KEY NOT NULL,
	`value` blob NOT NULL,
	`mod_index` integer NOT NULL
);
