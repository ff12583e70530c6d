CREATE TABLE `members` (
	`node_id` text PRIMARY KEY NOT NULL,
	`address` text NOT NULL,
	`mod_index` integer NOT NULL
);
