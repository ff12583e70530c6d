CREATE TABLE `config_deployments` (
	`version` integer PRIMARY KEY NOT NULL,
	`document` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `config_state` (
	`part` text PRIMARY KEY NOT NULL,
	`document` text NOT NULL
);
