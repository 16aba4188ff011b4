#!/usr/bin/python3
"""Generates a deterministic synthetic e-commerce dataset for recmodel's demo, tests and benchmarks.

Four files, each with exactly --rows records (header lines excluded):
  products.csv    id,title,category           product title -> one of 11 categories
  queries.tsv     id<TAB>query<TAB>intent      search query -> one of 8 intents
  reviews.jsonl   {"id","text","stars"}        review text -> 1..5 stars (a number)
  relevance.csv   id,query,title,label         query + product title -> exact/substitute/complement/irrelevant

The data is noisy the way real exports are: typos, mixed case, HTML remnants (&amp;, <br>), French,
German, Spanish, Chinese, Japanese and Korean text, emoji, quoted CSV fields with commas, quotes and
newlines, exact duplicates, duplicates with conflicting labels, and a few unusable rows (empty text,
missing label, non-numeric stars, wrong field count, invalid UTF-8 bytes in one products.csv row, an
unterminated quote at the very end of products.csv). relevance.csv starts with a UTF-8 BOM, as
spreadsheet exports do.

The same --seed and --rows give byte-identical files (stdlib only, no hash-order dependence), and rows
are streamed to disk so a million rows need no more memory than a hundred.
"""

import argparse
import json
import os
import random
import sys

# ---------------------------------------------------------------------------------------------------
# Vocabulary of the catalogue. Each category: brands, (noun, specs) pairs, whether colours apply, and
# the same kind of products written in other languages (used for the non-English titles).

CATEGORIES = [
    {
        "name": "Electronics",
        "brands": ["Voltix", "Sonora", "Nexacore", "Pixelon", "Auralink", "Kinetiq", "Lumetra", "Zentro"],
        "items": [
            ("Wireless Earbuds", ["Bluetooth 5.3", "Noise Cancelling", "30h Battery", "IPX5"]),
            ("Bluetooth Speaker", ["20W", "Waterproof IPX7", "Portable", "360° Sound"]),
            ("USB-C Charger", ["65W", "30 W", "GaN", "2-Port"]),
            ("Power Bank", ["10000 mAh", "20000mAh", "PD 22.5W", "Slim"]),
            ("Smartwatch", ["1.4 inch AMOLED", "GPS", "Heart Rate Monitor", "5 ATM"]),
            ("4K Smart TV", ['55"', "65 inch", "HDR10+", "120 Hz"]),
            ("Laptop", ['15.6" FHD', "16GB RAM", "512 GB SSD", "Intel Core i7"]),
            ("Tablet", ['10.1"', "64 GB", "Wi-Fi", "LTE"]),
            ("HDMI Cable", ["2 m", "1m", "8K 60Hz", "Braided"]),
            ("Gaming Mouse", ["16000 DPI", "RGB", "Wireless", "6 Buttons"]),
            ("Mechanical Keyboard", ["Red Switches", "TKL", "RGB Backlit", "US Layout"]),
            ("Webcam", ["1080p", "4K", "With Microphone", "Autofocus"]),
            ("External SSD", ["1TB", "2 TB", "USB 3.2", "1050MB/s"]),
            ("Phone Case", ["for iPhone 15", "for Galaxy S24", "MagSafe", "Shockproof"]),
        ],
        "colours": True,
        "foreign": {
            "fr": ["Écouteurs sans fil", "Chargeur rapide USB-C", "Enceinte Bluetooth étanche", "Câble HDMI tressé"],
            "de": ["Kabellose Kopfhörer", "Schnellladegerät USB-C", "Bluetooth-Lautsprecher", "Externe Festplatte"],
            "es": ["Auriculares inalámbricos", "Cargador rápido USB-C", "Altavoz Bluetooth", "Ratón inalámbrico"],
            "zh": ["无线蓝牙耳机", "快速充电器", "移动电源", "机械键盘"],
            "ja": ["ワイヤレスイヤホン", "モバイルバッテリー", "ゲーミングマウス"],
            "ko": ["무선 이어폰", "고속 충전기", "블루투스 스피커"],
        },
    },
    {
        "name": "Home & Kitchen",
        "brands": ["Casaluna", "Hearthly", "KitchenCraft", "Norrvik", "Ambra", "CopperLeaf"],
        "items": [
            ("Stainless Steel Saucepan", ["20 cm", "2 qt", "Induction Ready", "with Lid"]),
            ("Non-Stick Frying Pan", ["24 cm", "28cm", "PFOA-Free", "Oven Safe"]),
            ("Chef's Knife", ["8 inch", "20 cm", "German Steel", "Full Tang"]),
            ("Bamboo Cutting Board", ["Large", "45 x 30 cm", "with Juice Groove", "Set of 3"]),
            ("Drip Coffee Maker", ["12-Cup", "1.5 L", "Programmable", "Thermal Carafe"]),
            ("Electric Kettle", ["1.7 L", "1.7L", "Glass", "Temperature Control"]),
            ("Bath Towel Set", ["6 Piece", "100% Cotton", "600 GSM", "Quick Dry"]),
            ("Memory Foam Pillow", ["Standard", "King Size", "Cooling Gel", "Hypoallergenic"]),
            ("Cotton Bed Sheets", ["Queen", "King", "400 Thread Count", "Deep Pocket"]),
            ("Food Storage Containers", ["Set of 10", "Glass", "BPA-Free", "Airtight"]),
            ("LED Desk Lamp", ["Dimmable", "USB Charging Port", "5 Colour Modes", "10W"]),
            ("Cordless Vacuum Cleaner", ["25 kPa", "40 min Runtime", "HEPA Filter", "Lightweight"]),
        ],
        "colours": True,
        "foreign": {
            "fr": ["Poêle antiadhésive", "Bouilloire électrique", "Cafetière programmable", "Drap housse en coton"],
            "de": ["Bratpfanne antihaft", "Wasserkocher Edelstahl", "Kaffeemaschine", "Kopfkissen"],
            "es": ["Sartén antiadherente", "Hervidor eléctrico", "Cafetera de goteo", "Juego de toallas"],
            "zh": ["不粘锅", "电热水壶", "记忆棉枕头"],
            "ja": ["フライパン", "電気ケトル", "コーヒーメーカー"],
            "ko": ["프라이팬", "전기 주전자"],
        },
    },
    {
        "name": "Grocery",
        "brands": ["GreenValley", "Nonna Rosa", "Highland Farms", "Sunbeam Organics", "Kōyō", "Terra Nostra"],
        "items": [
            ("Organic Green Tea", ["20 Bags", "100 g", "Matcha Blend", "Decaf"]),
            ("Extra Virgin Olive Oil", ["500 ml", "1 L", "750ml", "Cold Pressed"]),
            ("Ground Coffee", ["250 g", "1 kg", "Medium Roast", "Espresso"]),
            ("Dark Chocolate Bar", ["100 g", "70% Cocoa", "85% cacao", "Sea Salt"]),
            ("Basmati Rice", ["1 kg", "5 lb", "2kg", "Aged"]),
            ("Sparkling Water", ["12 x 330 ml", "6 x 1 L", "Lemon", "Unsweetened"]),
            ("Peanut Butter", ["340 g", "1kg", "Crunchy", "No Added Sugar"]),
            ("Spaghetti Pasta", ["500 g", "Durum Wheat", "Whole Grain", "Gluten-Free"]),
            ("Raw Honey", ["250 g", "500g", "Manuka MGO 250+", "Unfiltered"]),
            ("Granola", ["400 g", "Honey & Almond", "High Protein", "Low Sugar"]),
            ("Almond Milk", ["1 L", "6 x 1L", "Unsweetened", "Barista Edition"]),
        ],
        "colours": False,
        "foreign": {
            "fr": ["Thé vert bio", "Huile d'olive vierge extra", "Café moulu", "Chocolat noir 70%"],
            "de": ["Bio Grüntee", "Natives Olivenöl extra", "Gemahlener Kaffee", "Zartbitterschokolade"],
            "es": ["Té verde ecológico", "Aceite de oliva virgen extra", "Café molido", "Miel cruda"],
            "zh": ["有机绿茶", "特级初榨橄榄油", "黑巧克力"],
            "ja": ["緑茶", "オリーブオイル", "コーヒー豆"],
            "ko": ["녹차", "올리브 오일"],
        },
    },
    {
        "name": "Beauty & Personal Care",
        "brands": ["Lumière", "Velvetine", "PureRoots", "Aqualis", "Maison Élan", "DermaFresh"],
        "items": [
            ("Shampoo", ["250 ml", "400ml", "Sulfate-Free", "for Dry Hair"]),
            ("Conditioner", ["250 ml", "1 L", "Argan Oil", "Repair"]),
            ("Moisturizing Face Cream", ["50 ml", "SPF 30", "Hyaluronic Acid", "Night"]),
            ("Matte Lipstick", ["Shade 04", "Long Lasting", "3.5 g", "Vegan"]),
            ("Eau de Parfum", ["50 ml", "100 ml", "for Women", "for Men"]),
            ("Electric Toothbrush", ["Sonic", "2 Brush Heads", "Travel Case", "Rechargeable"]),
            ("Sunscreen Lotion", ["SPF 50", "200 ml", "Water Resistant", "Kids"]),
            ("Liquid Hand Soap", ["500 ml", "Refill 1 L", "Lavender", "Antibacterial"]),
            ("Nail Polish", ["15 ml", "Gel Effect", "Quick Dry", "Set of 6"]),
            ("Beard Oil", ["30 ml", "Sandalwood", "Unscented", "with Comb"]),
        ],
        "colours": False,
        "foreign": {
            "fr": ["Crème hydratante visage", "Shampooing sans sulfate", "Rouge à lèvres mat", "Crème solaire SPF 50"],
            "de": ["Feuchtigkeitscreme", "Shampoo für trockenes Haar", "Elektrische Zahnbürste", "Sonnencreme"],
            "es": ["Crema hidratante facial", "Champú sin sulfatos", "Protector solar", "Cepillo de dientes eléctrico"],
            "zh": ["保湿面霜", "洗发水", "防晒霜"],
            "ja": ["保湿クリーム", "シャンプー", "日焼け止め"],
            "ko": ["수분 크림", "샴푸", "선크림"],
        },
    },
    {
        "name": "Clothing & Shoes",
        "brands": ["Northpeak", "Urbanthread", "Stride & Co", "Milano Moda", "Fjellbu", "Cotton Lane"],
        "items": [
            ("Men's Crew Neck T-Shirt", ["Size M", "Size L", "XL", "100% Cotton"]),
            ("Women's Running Jacket", ["Size S", "Size M", "Windproof", "Reflective"]),
            ("Slim Fit Jeans", ["32W x 30L", "34W x 32L", "Stretch", "Dark Wash"]),
            ("Merino Wool Socks", ["3 Pairs", "EU 39-42", "Hiking", "Cushioned"]),
            ("Pullover Hoodie", ["Size XS", "XXL", "Fleece Lined", "Unisex"]),
            ("Leather Belt", ["105 cm", "Size 34", "Reversible", "Genuine Leather"]),
            ("Summer Maxi Dress", ["Size 10", "Size 12", "Floral", "V-Neck"]),
            ("Running Shoes", ["EU 42", "US 9", "UK 8.5", "Wide Fit"]),
            ("Winter Gloves", ["Touchscreen", "Size M/L", "Thermal", "Waterproof"]),
            ("Baseball Cap", ["One Size", "Adjustable", "Cotton", "Embroidered"]),
        ],
        "colours": True,
        "foreign": {
            "fr": ["T-shirt homme col rond", "Veste de course femme", "Chaussures de running", "Chaussettes en laine"],
            "de": ["Herren T-Shirt", "Laufjacke Damen", "Laufschuhe", "Wollsocken"],
            "es": ["Camiseta de hombre", "Chaqueta de running mujer", "Zapatillas de correr", "Vaqueros slim"],
            "zh": ["男士圆领T恤", "女式跑步夹克", "跑步鞋"],
            "ja": ["メンズTシャツ", "ランニングシューズ", "ウールソックス"],
            "ko": ["남성 티셔츠", "러닝화"],
        },
    },
    {
        "name": "Sports & Outdoors",
        "brands": ["Summitline", "AeroFit", "Trailhawk", "Bergmann Sport", "PulseCore", "Wavecrest"],
        "items": [
            ("Yoga Mat", ["6 mm", "183 x 61 cm", "Non-Slip", "with Carry Strap"]),
            ("Adjustable Dumbbell Set", ["2 x 5 kg", "20 lb", "40kg", "with Rack"]),
            ("Camping Tent", ["2-Person", "4 Person", "Waterproof 3000mm", "Pop-Up"]),
            ("Insulated Water Bottle", ["750 ml", "32 oz", "1L", "Leak-Proof"]),
            ("Cycling Helmet", ["Size M", "54-58 cm", "with LED Light", "MIPS"]),
            ("Hiking Backpack", ["40 L", "65L", "Rain Cover", "Ventilated Back"]),
            ("Resistance Bands", ["Set of 5", "Heavy", "Fabric", "with Handles"]),
            ("Football", ["Size 5", "Size 4", "Training", "Match Ball"]),
            ("Tennis Racket", ["Grip 2", "300 g", "Graphite", "Strung"]),
            ("Sleeping Bag", ["-5°C", "Mummy", "Lightweight 1.2 kg", "Double"]),
        ],
        "colours": True,
        "foreign": {
            "fr": ["Tapis de yoga antidérapant", "Tente de camping 2 places", "Gourde isotherme", "Sac à dos de randonnée"],
            "de": ["Yogamatte rutschfest", "Campingzelt", "Trinkflasche isoliert", "Wanderrucksack"],
            "es": ["Esterilla de yoga", "Tienda de campaña", "Botella térmica", "Mochila de senderismo"],
            "zh": ["瑜伽垫", "露营帐篷", "保温水壶"],
            "ja": ["ヨガマット", "テント", "水筒"],
            "ko": ["요가 매트", "캠핑 텐트"],
        },
    },
    {
        "name": "Toys & Games",
        "brands": ["Brickbuddy", "Wonderwood", "Playmosa", "Kidoodle", "Gamesmith", "Tinytown"],
        "items": [
            ("Building Blocks Set", ["500 Pieces", "1200 pcs", "Ages 6+", "City Series"]),
            ("Jigsaw Puzzle", ["1000 Pieces", "500 pcs", "Landscape", "for Adults"]),
            ("Remote Control Car", ["1:16 Scale", "2.4 GHz", "Off-Road", "Rechargeable"]),
            ("Plush Teddy Bear", ["30 cm", "Extra Large 100cm", "Soft", "Washable"]),
            ("Strategy Board Game", ["2-4 Players", "Ages 10+", "60 min", "Family Edition"]),
            ("Kids' Art Set", ["120 pcs", "with Easel", "Washable Markers", "Carry Case"]),
            ("Wooden Train Set", ["50 Pieces", "Ages 3+", "with Bridge", "Compatible"]),
            ("Action Figure", ["15 cm", "Articulated", "Collector's Edition", "Ages 4+"]),
            ("Card Game", ["2-6 Players", "Party Game", "Travel Size", "Ages 8+"]),
            ("Wooden Dollhouse", ["3 Floors", "with Furniture", "Ages 3+", "LED Lights"]),
        ],
        "colours": False,
        "foreign": {
            "fr": ["Jeu de construction", "Puzzle 1000 pièces", "Voiture télécommandée", "Peluche ours"],
            "de": ["Bausteine Set", "Puzzle 1000 Teile", "Ferngesteuertes Auto", "Holzeisenbahn"],
            "es": ["Bloques de construcción", "Rompecabezas 1000 piezas", "Coche teledirigido", "Juego de mesa"],
            "zh": ["积木玩具", "拼图", "遥控车"],
            "ja": ["ブロック玩具", "ジグソーパズル", "ぬいぐるみ"],
            "ko": ["블록 장난감", "직소 퍼즐"],
        },
    },
    {
        "name": "Books",
        "brands": [],  # books get authors and formats instead (see Generator.book_title)
        "items": [],
        "colours": False,
        "foreign": {
            "fr": ["Le Petit Jardin d'hiver (Poche)", "Cuisine végétarienne facile", "Apprendre Python en 30 jours"],
            "de": ["Die stille Bucht: Roman (Taschenbuch)", "Backen mit Sauerteig", "Grundkurs Statistik"],
            "es": ["La casa del faro: novela", "Cocina mediterránea fácil", "Historia de España (Tapa dura)"],
            "zh": ["三体", "红楼梦", "Python编程入门"],
            "ja": ["ノルウェイの森", "はじめてのプログラミング"],
            "ko": ["채식주의자", "파이썬 입문"],
        },
    },
    {
        "name": "Pet Supplies",
        "brands": ["Pawsome", "Happy Tails", "WhiskerWorks", "Alpine Paws", "Feline Finest", "BarkBox Co"],
        "items": [
            ("Dry Dog Food", ["2 kg", "15 lb", "Grain-Free", "Adult Chicken"]),
            ("Clumping Cat Litter", ["10 L", "20L", "Unscented", "Low Dust"]),
            ("Cat Scratching Post", ["80 cm", "Sisal", "with Hammock", "Multi-Level"]),
            ("Retractable Dog Leash", ["5 m", "1.5m", "up to 25 kg", "Reflective"]),
            ("Orthopedic Pet Bed", ["Large", "Medium 80 x 60 cm", "Washable Cover", "Memory Foam"]),
            ("Rope Chew Toys", ["3-Pack", "Set of 5", "for Puppies", "Durable"]),
            ("Aquarium Filter", ["200 L/h", "for 60 L Tanks", "Silent", "Internal"]),
            ("Wild Bird Seed", ["1 kg", "5 kg", "No Mess", "Sunflower Mix"]),
            ("Dog Shampoo", ["500 ml", "Oatmeal", "Sensitive Skin", "Tearless"]),
            ("Cat Treats", ["60 g", "Salmon", "12 x 15g", "Dental"]),
        ],
        "colours": True,
        "foreign": {
            "fr": ["Croquettes pour chien", "Litière pour chat agglomérante", "Arbre à chat", "Laisse rétractable"],
            "de": ["Trockenfutter für Hunde", "Katzenstreu klumpend", "Kratzbaum", "Hundeleine"],
            "es": ["Pienso para perros", "Arena para gatos", "Rascador para gatos", "Correa extensible"],
            "zh": ["狗粮", "猫砂", "猫抓板"],
            "ja": ["ドッグフード", "猫砂", "キャットタワー"],
            "ko": ["강아지 사료", "고양이 모래"],
        },
    },
    {
        "name": "Health & Household",
        "brands": ["VitaNova", "CleanCrest", "Medisure", "HomeGuard", "Purelle", "Evergreen Labs"],
        "items": [
            ("Vitamin D3 Tablets", ["1000 IU", "120 Count", "4000 IU", "Vegan"]),
            ("Daily Multivitamin", ["90 Capsules", "for Women", "for Men 50+", "Gummies"]),
            ("First Aid Kit", ["100 Pieces", "Compact", "for Car", "Waterproof Case"]),
            ("Digital Thermometer", ["Oral", "Infrared", "Fast 10s Reading", "Fever Alarm"]),
            ("Hand Sanitizer Gel", ["500 ml", "70% Alcohol", "Pump Bottle", "Aloe Vera"]),
            ("Laundry Detergent", ["2 L", "40 Washes", "Sensitive", "Pods 60 ct"]),
            ("Dishwasher Tablets", ["50 Count", "All-in-1", "Lemon", "Eco"]),
            ("Paper Towels", ["6 Rolls", "12 Rolls", "2-Ply", "Extra Absorbent"]),
            ("Disposable Face Masks", ["50 pcs", "3-Ply", "FFP2", "Individually Wrapped"]),
            ("Toilet Paper", ["12 Rolls", "24 Rolls", "3-Ply", "Recycled"]),
        ],
        "colours": False,
        "foreign": {
            "fr": ["Vitamine D3 comprimés", "Gel hydroalcoolique", "Lessive liquide", "Trousse de premiers secours"],
            "de": ["Vitamin D3 Tabletten", "Desinfektionsgel", "Waschmittel flüssig", "Erste-Hilfe-Set"],
            "es": ["Vitamina D3 comprimidos", "Gel desinfectante", "Detergente líquido", "Botiquín de primeros auxilios"],
            "zh": ["维生素D3", "洗衣液", "口罩"],
            "ja": ["ビタミンD", "洗濯洗剤", "マスク"],
            "ko": ["비타민 D", "세탁 세제"],
        },
    },
    {
        "name": "Office Supplies",
        "brands": ["Scriptura", "Papyra", "Deskwise", "InkWell", "Officio", "Notara"],
        "items": [
            ("Ballpoint Pens", ["Pack of 10", "Blue Ink", "0.7 mm", "Retractable"]),
            ("A4 Printer Paper", ["500 Sheets", "80 gsm", "5 Reams", "Bright White"]),
            ("Sticky Notes", ["76 x 76 mm", "12 Pads", "Neon Colours", "Super Sticky"]),
            ("Heavy Duty Stapler", ["50 Sheets", "with 1000 Staples", "Metal", "Desktop"]),
            ("Spiral Notebook", ["A5", "100 Pages", "Dotted", "Hardcover"]),
            ("Desk Organizer", ["5 Compartments", "Mesh", "Bamboo", "Rotating"]),
            ("Highlighters", ["6 Colours", "Chisel Tip", "Pastel", "Pack of 12"]),
            ("Ink Cartridge", ["XL", "Black", "Tri-Colour", "Twin Pack"]),
            ("File Folders", ["Set of 12", "A4", "Expanding", "Letter Size"]),
            ("Whiteboard Markers", ["Pack of 8", "Dry Erase", "Fine Tip", "Low Odour"]),
        ],
        "colours": True,
        "foreign": {
            "fr": ["Stylos à bille", "Papier pour imprimante A4", "Cahier à spirale", "Surligneurs"],
            "de": ["Kugelschreiber", "Druckerpapier A4", "Notizbuch", "Textmarker"],
            "es": ["Bolígrafos", "Papel de impresora A4", "Cuaderno de espiral", "Rotuladores"],
            "zh": ["圆珠笔", "打印纸", "笔记本"],
            "ja": ["ボールペン", "コピー用紙", "ノート"],
            "ko": ["볼펜", "복사용지"],
        },
    },
]

COLOURS = ["Black", "White", "Silver", "Navy Blue", "Red", "Forest Green", "Rose Gold", "Grey",
           "Beige", "Sky Blue", "Charcoal", "Pink", "Olive", "Burgundy"]
PACKS = ["2-pack", "Pack of 3", "3 Pack", "Set of 4", "x2", "12-Count", "Value Pack", "Twin Pack"]
ADJECTIVES = ["Premium", "New", "Classic", "Ultra", "Pro", "Eco-Friendly", "Compact", "Deluxe",
              "Original", "Professional", "Lightweight", "Heavy Duty", "2024 Model", "Upgraded"]
MARKETING = ["Free Shipping", "Best Seller", "Limited Edition", "Gift Idea", "NEW!", "Sale",
             "Top Rated", "Fast Delivery"]
EMOJI = ["🔥", "⭐", "✅", "🎁", "💯", "✨", "👍", "❤️", "🇩🇪", "👨‍👩‍👧", "🐶", "☕", "🏃‍♀️", "📦"]
HTML_BITS = ["&amp;", "<br>", "<br/>", "&nbsp;", "&quot;", "<b>", "</b>", "&#39;", "&lt;", "<p>",
             "</span>", "&eacute;"]

BOOK_WORDS_A = ["The Silent", "A Winter", "The Last", "Hidden", "The Little", "Beyond the", "Whispers of the",
                "The Lost", "Under the", "The Secret"]
BOOK_WORDS_B = ["Harbor", "Garden", "Lighthouse", "Kingdom", "Orchard", "River", "Mountain", "Library",
                "Island", "Forest"]
BOOK_SUBJECTS = ["Python Programming for Beginners", "Mediterranean Cooking Made Easy", "Statistics in Plain English",
                 "The Complete Guide to Sourdough", "Machine Learning Fundamentals", "A History of Europe",
                 "Mindful Parenting", "Watercolour Painting Basics", "Marathon Training Handbook",
                 "Personal Finance for Everyone"]
BOOK_FORMATS = ["Paperback", "Hardcover", "Kindle Edition", "Audiobook", "Large Print", "Box Set"]
AUTHORS = ["Elena Marsh", "J. R. Whitfield", "Amira Haddad", "Lukas Brenner", "Sofia Álvarez",
           "Haruki Tanabe", "Marie-Claire Dubois", "O. Nwosu", "Björn Lindqvist", "Priya Raman"]
EDITIONS = ["2nd Edition", "3rd Edition", "Revised Edition", "Illustrated", "Anniversary Edition"]

# Accessories bought together with a product (query noun -> titles of other products).
COMPLEMENTS = {
    "Laptop": ["Gaming Mouse", "USB-C Charger", "External SSD", "Mechanical Keyboard", "Desk Organizer"],
    "4K Smart TV": ["HDMI Cable", "Bluetooth Speaker"],
    "Tablet": ["Phone Case", "USB-C Charger", "Power Bank"],
    "Drip Coffee Maker": ["Ground Coffee", "Electric Kettle"],
    "Ground Coffee": ["Drip Coffee Maker", "Almond Milk"],
    "Non-Stick Frying Pan": ["Chef's Knife", "Bamboo Cutting Board", "Extra Virgin Olive Oil"],
    "Spaghetti Pasta": ["Extra Virgin Olive Oil", "Stainless Steel Saucepan"],
    "Shampoo": ["Conditioner"],
    "Running Shoes": ["Merino Wool Socks", "Insulated Water Bottle"],
    "Camping Tent": ["Sleeping Bag", "Hiking Backpack", "Insulated Water Bottle"],
    "Yoga Mat": ["Resistance Bands", "Insulated Water Bottle"],
    "Dry Dog Food": ["Retractable Dog Leash", "Rope Chew Toys", "Dog Shampoo"],
    "Clumping Cat Litter": ["Cat Treats", "Cat Scratching Post"],
    "A4 Printer Paper": ["Ink Cartridge", "Heavy Duty Stapler"],
    "Spiral Notebook": ["Ballpoint Pens", "Highlighters"],
    "Electric Toothbrush": ["Liquid Hand Soap"],
    "Remote Control Car": ["Power Bank"],
}

INTENTS = ["navigational", "product", "category", "support", "order_status", "returns", "account", "deals"]
CATEGORY_BROWSE = {
    "Electronics": ["electronics", "headphones", "tv and audio", "computer accessories", "phone accessories"],
    "Home & Kitchen": ["kitchen", "cookware", "home decor", "bedding", "small kitchen appliances"],
    "Grocery": ["groceries", "snacks", "organic food", "coffee and tea", "pantry staples"],
    "Beauty & Personal Care": ["skincare", "hair care", "makeup", "fragrances", "mens grooming"],
    "Clothing & Shoes": ["mens clothing", "womens dresses", "shoes", "activewear", "winter accessories"],
    "Sports & Outdoors": ["camping gear", "fitness equipment", "outdoor", "cycling", "hiking gear"],
    "Toys & Games": ["toys", "board games", "toys for 5 year olds", "puzzles", "educational toys"],
    "Books": ["books", "new releases books", "cookbooks", "childrens books", "bestsellers fiction"],
    "Pet Supplies": ["pet supplies", "dog food", "cat toys", "aquarium", "pet beds"],
    "Health & Household": ["vitamins", "cleaning supplies", "household essentials", "first aid", "laundry"],
    "Office Supplies": ["office supplies", "stationery", "school supplies", "printer ink", "notebooks"],
}
FOREIGN_QUERIES = {
    "order_status": ["où est ma commande", "wo ist meine bestellung", "dónde está mi pedido", "我的订单在哪里",
                     "注文状況を確認", "주문 배송 조회", "suivi de colis", "sendungsverfolgung"],
    "returns": ["retourner un article", "rücksendung", "devolver un producto", "退货", "返品したい"],
    "account": ["mot de passe oublié", "passwort vergessen", "cambiar contraseña", "修改密码"],
    "support": ["service client", "kundenservice kontakt", "atención al cliente", "客服电话", "お問い合わせ"],
    "deals": ["soldes", "angebote der woche", "ofertas", "优惠券", "セール"],
    "category": ["jouets", "küchengeräte", "ropa de mujer", "电子产品", "キッチン用品"],
}

REVIEW_OPENERS = {
    5: ["Absolutely love this {n}!", "Best {n} I have ever bought.", "Exceeded my expectations.",
        "Perfect, exactly as described.", "Five stars, would buy again!", "Fantastic quality for the price."],
    4: ["Really good {n}, minor issues.", "Very happy with it overall.", "Good value for money.",
        "Works well, packaging could be better.", "Nice {n}, does the job.", "Solid purchase."],
    3: ["It's okay, nothing special.", "Average {n}.", "Does what it says, but feels cheap.",
        "Mixed feelings about this one.", "Decent but overpriced.", "Not bad, not great."],
    2: ["Disappointed with this {n}.", "Quality is poor.", "Stopped working properly after a week.",
        "Not as pictured.", "Expected much more for the price.", "Smaller than I thought."],
    1: ["Broke after two days.", "Complete waste of money.", "Terrible {n}, do not buy!",
        "Arrived damaged and seller did not respond.", "Worst purchase ever.", "Returned it immediately."],
}
REVIEW_DETAILS = ["Arrived in {d} days.", "Bought it for my {who}.", "Used it daily for {w} weeks now.",
                  "The {c} colour looks great.", "Instructions were unclear.", "Customer service was helpful.",
                  "Battery lasts about {h} hours.", "Fits as expected.", "Smells a bit chemical at first.",
                  "Shipping was fast.", "Would be nice with a longer cable.", "My {who} loves it."]
REVIEW_WHO = ["wife", "husband", "son", "daughter", "mom", "dad", "dog", "cat", "office", "kitchen"]
FOREIGN_REVIEWS = {
    5: ["Très bon produit, je recommande !", "Sehr gut, schnelle Lieferung.", "Producto excelente, llegó rápido.",
        "质量很好，非常满意！", "とても良い商品です。", "정말 좋아요!"],
    4: ["Bon rapport qualité-prix.", "Gutes Produkt, kleine Mängel.", "Bastante bueno.", "还不错。"],
    3: ["Correct sans plus.", "Ganz okay.", "Normal, nada especial.", "普通です。"],
    2: ["Déçu par la qualité.", "Leider nicht wie beschrieben.", "No lo recomiendo mucho.", "质量一般。"],
    1: ["Produit cassé à l'arrivée.", "Totaler Schrott!", "Muy malo, no funciona.", "非常差，退货了。", "最悪です。"],
}
STAR_WORDS = ["five", "4 stars", "★★★", "n/a", "3.5/5", "two"]

RELEVANCE_LABELS = ["exact", "substitute", "complement", "irrelevant"]
QWERTY_NEIGHBOURS = {
    "a": "qsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc", "g": "ftyhbv",
    "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop", "m": "njk", "n": "bhjm",
    "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz", "t": "rfgy", "u": "yhji",
    "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}

MODEL_FORMATS = ["%s-%d", "%s%d", "Model %s%d", "(%s-%d)", "Gen %.0s%d"]

BATCH = 4096  # rows encoded and written per write() call


def csv_field(value):
    """Quotes a CSV field per RFC 4180 when it holds a comma, quote or line break."""
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


class Generator:
    """Draws every row from one seeded random stream, so output depends only on --seed and --rows."""

    def __init__(self, seed, rows):
        self.rng = random.Random(seed)
        self.rows = rows
        self.items = []  # (category index, noun, specs)
        for ci, cat in enumerate(CATEGORIES):
            for noun, specs in cat["items"]:
                self.items.append((ci, noun, specs))
        self.noun_to_item = {noun: (ci, noun, specs) for ci, noun, specs in self.items}
        self.languages = ["fr", "de", "es", "zh", "ja", "ko"]

    # -- helpers -------------------------------------------------------------------------------------

    def pick(self, seq):
        return seq[int(self.rng.random() * len(seq))]

    def bad_positions(self, kinds):
        """Returns {row index: kind}: each kind once at a random row, then about 1 in 2,000 rows more."""
        rng = self.rng
        positions = {}
        extra = self.rows // 2000
        # The last row is left alone: products.csv ends with its own defect there.
        candidates = self.rows - 1
        for kind in kinds:
            for _ in range(1 + extra):
                if len(positions) >= candidates // 2:
                    break
                pos = rng.randrange(candidates)
                while pos in positions:
                    pos = rng.randrange(candidates)
                positions[pos] = kind
        return positions

    def typo(self, text):
        """Introduces one keyboard typo: a swap, a dropped, doubled or neighbouring-key letter."""
        rng = self.rng
        n = len(text)
        if n < 4:
            return text
        i = 1 + int(rng.random() * (n - 2))
        ch = text[i]
        if not ch.isalpha():
            return text
        op = rng.random()
        if op < 0.3:
            return text[:i] + text[i + 1] + ch + text[i + 2:]
        if op < 0.55:
            return text[:i] + text[i + 1:]
        if op < 0.75:
            return text[:i] + ch + ch + text[i + 1:]
        near = QWERTY_NEIGHBOURS.get(ch.lower())
        if not near:
            return text
        return text[:i] + near[int(rng.random() * len(near))] + text[i + 1:]

    def case_noise(self, text):
        r = self.rng.random()
        if r < 0.35:
            return text.upper()
        if r < 0.75:
            return text.lower()
        return "".join(c.upper() if self.rng.random() < 0.5 else c.lower() for c in text)

    def html_noise(self, text):
        rng = self.rng
        r = rng.random()
        if "&" in text and r < 0.5:
            return text.replace("&", "&amp;")
        if r < 0.65:
            return text.replace(" ", " &nbsp;", 1)
        if r < 0.8:
            return "<b>" + text + "</b>"
        if r < 0.9:
            return text + " <br>" + self.pick(MARKETING)
        return text.replace("'", "&#39;").replace('"', "&quot;") + " " + self.pick(HTML_BITS)

    # -- products ------------------------------------------------------------------------------------

    def book_title(self):
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            title = self.pick(BOOK_WORDS_A) + " " + self.pick(BOOK_WORDS_B)
            if rng.random() < 0.4:
                title += ": A Novel"
        else:
            title = self.pick(BOOK_SUBJECTS)
            if rng.random() < 0.5:
                title += ", " + self.pick(EDITIONS)
        if rng.random() < 0.25:
            title += ", Vol. %d" % (1 + int(rng.random() * 12))
        title += " (" + self.pick(BOOK_FORMATS) + ")"
        if rng.random() < 0.6:
            title += " by " + self.pick(AUTHORS)
        if rng.random() < 0.85:
            title += " %s%d" % (self.pick(["", "(", "– "]), 1950 + int(rng.random() * 75))
            if title[-5] == "(":
                title += ")"
        return title, "Book", ""

    def product(self):
        """Returns (title, category index, noun, brand) of one clean product."""
        rng = self.rng
        r = rng.random
        if r() < 0.08:
            ci = 7  # Books
            title, noun, brand = self.book_title()
            return title, ci, noun, brand
        ci, noun, specs = self.items[int(r() * len(self.items))]
        cat = CATEGORIES[ci]
        brand = self.pick(cat["brands"])
        parts = [brand]
        if r() < 0.3:
            parts.append(self.pick(ADJECTIVES))
        parts.append(noun)
        if r() < 0.7:
            # Model numbers make most real catalogue titles unique.
            parts.append(MODEL_FORMATS[int(r() * len(MODEL_FORMATS))] % (brand[:2].upper(), 10 + int(r() * 9990)))
        spec = specs[int(r() * len(specs))]
        layout = r()
        if layout < 0.45:
            parts.append(spec)
        elif layout < 0.75:
            parts.append("- " + spec)
        else:
            parts[-1] += ", " + spec
        if cat["colours"] and r() < 0.45:
            parts.append(("- " if r() < 0.3 else "") + self.pick(COLOURS))
        if r() < 0.12:
            parts.append("(" + self.pick(PACKS) + ")" if r() < 0.5 else self.pick(PACKS))
        if r() < 0.1:
            parts.append(self.pick(specs))
        return " ".join(parts), ci, noun, brand

    def foreign_product(self):
        rng = self.rng
        ci = int(rng.random() * len(CATEGORIES))
        cat = CATEGORIES[ci]
        lang = self.pick(self.languages)
        noun = self.pick(cat["foreign"][lang])
        if cat["brands"] and rng.random() < 0.7:
            title = self.pick(cat["brands"]) + " " + noun
        else:
            title = noun
        if cat["items"] and rng.random() < 0.5:
            title += " " + self.pick(self.pick(cat["items"])[1])
        if cat["items"] and rng.random() < 0.7:
            title += " " + MODEL_FORMATS[int(rng.random() * 4)] % (lang.upper(), 10 + int(rng.random() * 9990))
        return title, ci

    def noisy_title(self):
        """Returns (title, category index) with the catalogue's usual noise applied."""
        rng = self.rng
        r = rng.random()
        if r < 0.07:
            title, ci = self.foreign_product()
        else:
            title, ci, _, _ = self.product()
        r = rng.random()
        if r < 0.06:
            title = self.typo(title)
        elif r < 0.09:
            title = self.typo(self.typo(title))
        r = rng.random()
        if r < 0.06:
            title = self.case_noise(title)
        r = rng.random()
        if r < 0.04:
            title = self.html_noise(title)
        elif r < 0.06:
            title = self.pick(EMOJI) + " " + title if rng.random() < 0.5 else title + " " + self.pick(EMOJI)
        elif r < 0.065:
            title = title.replace(" ", "  ", 1) + " "  # stray whitespace
        elif r < 0.068:
            title = title + "\n" + self.pick(MARKETING)  # a line break inside a quoted field
        elif r < 0.075:
            title = title + ", " + self.pick(MARKETING)  # a comma forces quoting
        return title, ci

    def write_products(self, path):
        rng = self.rng
        bad = self.bad_positions(["empty_title", "missing_label", "field_count", "invalid_utf8"])
        recent = []  # ring of recent rows to duplicate from (bounded memory)
        with open(path, "wb") as out:
            out.write(b"id,title,category\n")
            buf = []
            for i in range(self.rows):
                pid = "P%07d" % (i + 1)
                kind = bad.get(i)
                last = i == self.rows - 1
                if kind == "invalid_utf8":
                    if buf:
                        out.write("".join(buf).encode("utf-8"))
                        buf = []
                    # Latin-1 bytes pasted into a UTF-8 file: \xe9 and \xfc are not valid UTF-8 here.
                    out.write(pid.encode() + b",Caf\xe9 Cr\xe8me Kaffeemaschine f\xfcr 4 Tassen,Home & Kitchen\n")
                    continue
                if last:
                    # An export cut off mid-field: the opening quote is never closed.
                    title, ci = self.noisy_title()
                    buf.append('%s,"%s, 2-pack,%s\n' % (pid, title.replace('"', "'"), CATEGORIES[ci]["name"]))
                    continue
                if kind == "empty_title":
                    buf.append("%s,%s,%s\n" % (pid, self.pick(["", '""', "   "]), self.pick(CATEGORIES)["name"]))
                    continue
                title, ci = self.noisy_title()
                label = CATEGORIES[ci]["name"]
                if kind == "missing_label":
                    buf.append("%s,%s,\n" % (pid, csv_field(title)))
                    continue
                if kind == "field_count":
                    buf.append("%s,%s,%s,%s\n" % (pid, title.replace(",", " ").replace('"', "").replace("\n", " "),
                                                  label, self.pick(["in stock", "4.5", ""])))
                    continue
                r = rng.random()
                if recent and r < 0.015:
                    old_id, title, label = recent[int(rng.random() * len(recent))]
                    if rng.random() < 0.4:
                        pid = old_id  # the very same record exported twice
                elif recent and r < 0.019:
                    _, title, old_label = recent[int(rng.random() * len(recent))]
                    label = self.pick(CATEGORIES)["name"]
                    if label == old_label:
                        label = CATEGORIES[(CATEGORY_INDEX[label] + 1) % len(CATEGORIES)]["name"]
                if len(recent) < 512:
                    recent.append((pid, title, label))
                else:
                    recent[int(rng.random() * 512)] = (pid, title, label)
                buf.append("%s,%s,%s\n" % (pid, csv_field(title), csv_field(label)))
                if len(buf) >= BATCH:
                    out.write("".join(buf).encode("utf-8"))
                    buf = []
            out.write("".join(buf).encode("utf-8"))

    # -- queries -------------------------------------------------------------------------------------

    def query(self, intent):
        rng = self.rng
        pick = self.pick
        if intent in FOREIGN_QUERIES and rng.random() < 0.06:
            return pick(FOREIGN_QUERIES[intent])
        ci, noun, specs = pick(self.items)
        cat = CATEGORIES[ci]
        brand = pick(cat["brands"])
        n = noun.lower()
        if intent == "navigational":
            return pick([brand, brand + " store", brand + " official site", "www." + brand.replace(" ", "").lower()
                         + ".com", brand + " outlet", brand + " brand shop"])
        if intent == "product":
            r = rng.random()
            if r < 0.4:
                return brand + " " + n + " " + pick(specs)
            if r < 0.7:
                return n + " " + pick(specs)
            if r < 0.85 and cat["colours"]:
                return pick(COLOURS).lower() + " " + n
            return brand + " " + n
        if intent == "category":
            r = rng.random()
            if r < 0.6:
                return pick(CATEGORY_BROWSE[cat["name"]])
            if r < 0.8:
                return "all " + pick(CATEGORY_BROWSE[cat["name"]])
            return pick(CATEGORY_BROWSE[cat["name"]]) + " for " + pick(["kids", "men", "women", "home", "office"])
        if intent == "support":
            return pick(["how to reset my " + n, brand + " " + n + " not working", n + " user manual",
                         "warranty " + brand, "contact customer service", brand + " " + n + " won't turn on",
                         "replacement parts for " + n, "help with my " + n])
        if intent == "order_status":
            num = "%d-%07d" % (100 + int(rng.random() * 900), int(rng.random() * 10000000))
            return pick(["where is my order", "track order " + num, "order " + num + " status",
                         "when will my package arrive", "delivery delayed", "has my order shipped",
                         "tracking number " + num, "my parcel did not arrive"])
        if intent == "returns":
            return pick(["return " + n, "refund status", "how to return an item", "exchange " + n + " size",
                         "print return label", "return policy " + brand, "refund for damaged " + n,
                         "cancel and refund my order"])
        if intent == "account":
            return pick(["reset password", "change email address", "delete my account", "update payment method",
                         "cant log in", "change delivery address", "two factor authentication",
                         "unsubscribe from newsletter"])
        return pick([n + " deals", brand + " discount code", "black friday " + pick(CATEGORY_BROWSE[cat["name"]]),
                     "coupon code", "clearance sale " + n, n + " on sale", "cheap " + n, "prime day deals"])

    def write_queries(self, path):
        rng = self.rng
        bad = self.bad_positions(["empty_query", "missing_intent", "field_count"])
        recent = []
        weights = [0.1, 0.3, 0.14, 0.12, 0.12, 0.08, 0.06, 0.08]
        cumulative = []
        total = 0.0
        for w in weights:
            total += w
            cumulative.append(total)
        with open(path, "wb") as out:
            out.write(b"id\tquery\tintent\n")
            buf = []
            for i in range(self.rows):
                qid = "Q%07d" % (i + 1)
                kind = bad.get(i)
                if kind == "empty_query":
                    buf.append("%s\t\t%s\n" % (qid, self.pick(INTENTS)))
                    continue
                r = rng.random() * total
                intent = INTENTS[-1]
                for j, c in enumerate(cumulative):
                    if r < c:
                        intent = INTENTS[j]
                        break
                q = self.query(intent)
                r = rng.random()
                if r < 0.7:
                    q = q.lower()  # people type queries in lower case
                elif r < 0.73:
                    q = q.upper()
                r = rng.random()
                if r < 0.08:
                    q = self.typo(q)
                elif r < 0.09:
                    q = q + " " + self.pick(EMOJI)
                elif r < 0.1:
                    q = q.replace(" ", "&nbsp;", 1) if " " in q else q + "&amp;"
                elif r < 0.11:
                    q = "  " + q + " "
                if kind == "missing_intent":
                    buf.append("%s\t%s\t\n" % (qid, q))
                    continue
                if kind == "field_count":
                    buf.append("%s\t%s\n" % (qid, q))
                    continue
                r = rng.random()
                if recent and r < 0.02:
                    q, intent = recent[int(rng.random() * len(recent))]
                elif recent and r < 0.025:
                    q, old = recent[int(rng.random() * len(recent))]
                    intent = INTENTS[(INTENTS.index(old) + 1 + int(rng.random() * 7)) % len(INTENTS)]
                if len(recent) < 512:
                    recent.append((q, intent))
                else:
                    recent[int(rng.random() * 512)] = (q, intent)
                buf.append("%s\t%s\t%s\n" % (qid, q, intent))
                if len(buf) >= BATCH:
                    out.write("".join(buf).encode("utf-8"))
                    buf = []
            out.write("".join(buf).encode("utf-8"))

    # -- reviews -------------------------------------------------------------------------------------

    def review(self, stars):
        rng = self.rng
        pick = self.pick
        if rng.random() < 0.06:
            return pick(FOREIGN_REVIEWS[stars])
        _, noun, _ = pick(self.items)
        n = noun.lower()
        sentences = [pick(REVIEW_OPENERS[stars]).replace("{n}", n)]
        for _ in range(int(rng.random() * 3)):
            d = pick(REVIEW_DETAILS)
            d = (d.replace("{d}", str(1 + int(rng.random() * 14))).replace("{who}", pick(REVIEW_WHO))
                 .replace("{w}", str(1 + int(rng.random() * 20))).replace("{h}", str(2 + int(rng.random() * 40)))
                 .replace("{c}", pick(COLOURS).lower()))
            sentences.append(d)
        r = rng.random()
        sep = " "
        if r < 0.05:
            sep = "<br>"
        elif r < 0.08:
            sep = "\n"
        elif r < 0.1:
            sep = "<br /><br />"
        text = sep.join(sentences)
        r = rng.random()
        if r < 0.06:
            text = self.typo(text)
        elif r < 0.09:
            text = text.upper() if stars <= 2 else text.lower()
        r = rng.random()
        if r < 0.06:
            text += " " + pick(EMOJI)
        elif r < 0.08:
            text = text.replace("'", "&#39;").replace(" & ", " &amp; ")
        elif r < 0.09:
            text += "!!!"
        return text

    def write_reviews(self, path):
        rng = self.rng
        bad = self.bad_positions(["empty_text", "missing_stars", "non_numeric_stars", "null_stars"])
        dumps = json.dumps
        recent = []
        with open(path, "wb") as out:
            buf = []
            for i in range(self.rows):
                rid = "R%07d" % (i + 1)
                kind = bad.get(i)
                r = rng.random()
                stars = 5 if r < 0.42 else 4 if r < 0.64 else 3 if r < 0.76 else 2 if r < 0.86 else 1
                text = self.review(stars)
                if rng.random() < 0.03:  # the text and the rating disagree, as real reviews sometimes do
                    stars = max(1, min(5, stars + self.pick([-2, -1, 1, 2])))
                if kind == "empty_text":
                    text = self.pick(["", " "])
                r = rng.random()
                if kind is None and recent and r < 0.015:
                    text, stars = recent[int(rng.random() * len(recent))]
                elif kind is None and recent and r < 0.02:
                    text, old = recent[int(rng.random() * len(recent))]
                    stars = 1 + (old + int(rng.random() * 4)) % 5
                elif kind is None:
                    if len(recent) < 512:
                        recent.append((text, stars))
                    else:
                        recent[int(rng.random() * 512)] = (text, stars)
                if kind == "missing_stars":
                    obj = {"id": rid, "text": text}
                elif kind == "non_numeric_stars":
                    obj = {"id": rid, "text": text, "stars": self.pick(STAR_WORDS)}
                elif kind == "null_stars":
                    obj = {"id": rid, "text": text, "stars": None}
                else:
                    obj = {"id": rid, "text": text, "stars": stars}
                buf.append(dumps(obj, ensure_ascii=False))
                buf.append("\n")
                if len(buf) >= BATCH:
                    out.write("".join(buf).encode("utf-8"))
                    buf = []
            out.write("".join(buf).encode("utf-8"))

    # -- relevance -----------------------------------------------------------------------------------

    def relevance_pair(self, label):
        """Returns (query, title) whose relationship is `label`."""
        rng = self.rng
        pick = self.pick
        if label == "complement":
            noun = pick(COMPLEMENT_KEYS)
            ci, _, specs = self.noun_to_item[noun]
            query = noun.lower() if rng.random() < 0.5 else pick(CATEGORIES[ci]["brands"]).lower() + " " + noun.lower()
            other = self.noun_to_item[pick(COMPLEMENTS[noun])]
            brand = pick(CATEGORIES[other[0]]["brands"])
            return query, brand + " " + other[1] + " " + pick(other[2])
        ci, noun, specs = pick(self.items)
        brands = CATEGORIES[ci]["brands"]
        brand = pick(brands)
        spec = pick(specs)
        title = brand + " " + noun + " " + spec
        if CATEGORIES[ci]["colours"] and rng.random() < 0.4:
            title += " " + pick(COLOURS)
        r = rng.random()
        if label == "exact":
            if r < 0.4:
                query = brand + " " + noun
            elif r < 0.8:
                query = noun + " " + spec
            else:
                query = brand + " " + noun + " " + spec
            return query.lower(), title
        if label == "substitute":
            # The same kind of product from another brand, or with another size/spec.
            other_brand = brands[(brands.index(brand) + 1 + int(rng.random() * (len(brands) - 1))) % len(brands)]
            if r < 0.6:
                return (other_brand + " " + noun).lower(), title
            other_spec = specs[(specs.index(spec) + 1 + int(rng.random() * (len(specs) - 1))) % len(specs)]
            return (noun + " " + other_spec).lower(), title
        # irrelevant: a product of another category
        oci, onoun, ospecs = pick(self.items)
        while oci == ci:
            oci, onoun, ospecs = pick(self.items)
        query = onoun.lower() if r < 0.5 else (pick(CATEGORIES[oci]["brands"]) + " " + onoun).lower()
        return query, title

    def write_relevance(self, path):
        rng = self.rng
        bad = self.bad_positions(["empty_query", "missing_label", "field_count", "unknown_label"])
        recent = []
        with open(path, "wb") as out:
            out.write("\ufeffid,query,title,label\n".encode("utf-8"))
            buf = []
            for i in range(self.rows):
                rid = "J%07d" % (i + 1)
                kind = bad.get(i)
                r = rng.random()
                label = ("exact" if r < 0.35 else "substitute" if r < 0.6 else "complement" if r < 0.75
                         else "irrelevant")
                query, title = self.relevance_pair(label)
                r = rng.random()
                if r < 0.05:
                    query = self.typo(query)
                elif r < 0.07:
                    title = self.html_noise(title)
                elif r < 0.09:
                    title = self.case_noise(title)
                elif r < 0.095:
                    title = title + " " + self.pick(EMOJI)
                if kind == "empty_query":
                    query = ""
                elif kind == "missing_label":
                    label = ""
                elif kind == "unknown_label":
                    label = self.pick(["relevant", "EXACT?", "n/a", "4"])
                elif kind == "field_count":
                    buf.append("%s,%s,%s\n" % (rid, csv_field(query), csv_field(title)))
                    continue
                else:
                    r = rng.random()
                    if recent and r < 0.01:
                        query, title, label = recent[int(rng.random() * len(recent))]
                    elif recent and r < 0.014:
                        query, title, old = recent[int(rng.random() * len(recent))]
                        label = RELEVANCE_LABELS[(RELEVANCE_LABELS.index(old) + 1) % 4]
                    elif len(recent) < 512:
                        recent.append((query, title, label))
                    else:
                        recent[int(rng.random() * 512)] = (query, title, label)
                buf.append("%s,%s,%s,%s\n" % (rid, csv_field(query), csv_field(title), label))
                if len(buf) >= BATCH:
                    out.write("".join(buf).encode("utf-8"))
                    buf = []
            out.write("".join(buf).encode("utf-8"))


CATEGORY_INDEX = {cat["name"]: i for i, cat in enumerate(CATEGORIES)}
COMPLEMENT_KEYS = sorted(COMPLEMENTS)
FILES = {
    "products": ("products.csv", Generator.write_products),
    "queries": ("queries.tsv", Generator.write_queries),
    "reviews": ("reviews.jsonl", Generator.write_reviews),
    "relevance": ("relevance.csv", Generator.write_relevance),
}


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Write a deterministic, noisy synthetic e-commerce dataset (products, queries, reviews, "
                    "relevance) for recmodel's demo, tests and benchmarks.")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--rows", type=int, default=5000, help="records per file (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    parser.add_argument("--only", action="append", choices=sorted(FILES),
                        help="write only this file (repeatable; default: all four)")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    os.makedirs(args.out, exist_ok=True)
    # Each file gets its own stream derived from the seed, so --only products writes the same
    # products.csv as a full run does.
    for index, key in enumerate(["products", "queries", "reviews", "relevance"]):
        if args.only and key not in args.only:
            continue
        name, write = FILES[key]
        path = os.path.join(args.out, name)
        generator = Generator(args.seed * 1000003 + index, args.rows)
        write(generator, path)
        print("%s\t%d rows\t%d bytes" % (path, args.rows, os.path.getsize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
