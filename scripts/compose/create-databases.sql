-- Run once by the postgres image on an empty data volume: one database per service.
CREATE DATABASE users;
CREATE DATABASE catalog;
CREATE DATABASE orders;
CREATE DATABASE chat;
