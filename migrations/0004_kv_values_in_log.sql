PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_kv` (
	`key` text PRIMARY KEY NOT NULL,
	`value` blob,
	`mod_index` integer NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_kv`("key", "value", "mod_index") SELECT "key", "value", "mod_index" FROM `kv`;--> statement-breakpoint
DROP TABLE `kv`;--> statement-breakpoint
ALTER TABLE `__new_kv` RENAME TO `kv`;--> statement-breakpoint
PRAGMA foreign_keys=ON;